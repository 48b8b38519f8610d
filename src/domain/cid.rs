//! Customer IDs as an engineer pastes them: split, trimmed, repeats collapsed,
//! each checked against the configured pattern, the list bounded by the
//! action's `max_cids`.

use regex::Regex;
use serde::{Deserialize, Serialize};

/// The default CID pattern of the specification.
pub const DEFAULT_CID_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$";

/// What a value breaking the default pattern is told: what a CID looks like.
pub const DEFAULT_CID_RULE: &str =
    "not a customer ID: use letters, digits, _ . or -, starting with a letter or digit";

/// A customer ID that matched the configured pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Cid(String);

impl Cid {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Cid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One rejected value and why, as the `invalid_cids` error lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvalidCid {
    pub value: String,
    pub reason: String,
}

/// CIDs as they arrived, before validation: either one pasted text or an
/// array of strings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum CidsInput {
    List(Vec<String>),
    Text(String),
}

/// The request's CIDs split and de-duplicated (first occurrence wins, order
/// kept) but not yet checked against the pattern. Replay comparison works on
/// this form, because it must happen before the catalog checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawCids(Vec<String>);

impl RawCids {
    pub fn from_input(input: &CidsInput) -> Self {
        let items: Vec<String> = match input {
            CidsInput::Text(text) => split_text(text).map(str::to_owned).collect(),
            CidsInput::List(list) => list.iter().map(|s| s.trim().to_owned()).collect(),
        };
        let mut seen = std::collections::HashSet::new();
        Self(
            items
                .into_iter()
                .filter(|c| seen.insert(c.clone()))
                .collect(),
        )
    }

    pub fn values(&self) -> &[String] {
        &self.0
    }

    /// The CIDs as a sorted set: what "the same set of CIDs" compares.
    pub fn sorted_set(&self) -> Vec<&str> {
        let mut set: Vec<&str> = self.0.iter().map(String::as_str).collect();
        set.sort_unstable();
        set
    }
}

/// Splits pasted text on commas, spaces, tabs and newlines.
pub fn split_text(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// Why a CID list was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidListError {
    NoCids,
    TooMany { max: usize, count: usize },
    Invalid(Vec<InvalidCid>),
}

/// The configured CID pattern.
#[derive(Clone, Debug)]
pub struct CidPolicy {
    pattern: Regex,
}

impl CidPolicy {
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            pattern: Regex::new(pattern)?,
        })
    }

    /// The pattern as configured.
    pub fn pattern(&self) -> &str {
        self.pattern.as_str()
    }

    /// Why a value is not a CID, saying what one looks like.
    fn mismatch(&self) -> String {
        if self.pattern.as_str() == DEFAULT_CID_PATTERN {
            DEFAULT_CID_RULE.to_owned()
        } else {
            format!(
                "does not match the customer ID pattern {}",
                self.pattern.as_str()
            )
        }
    }

    pub fn parse_one(&self, value: &str) -> Result<Cid, InvalidCid> {
        let reason = if value.is_empty() {
            "empty"
        } else if value.chars().any(char::is_whitespace) {
            "contains white space"
        } else if value.len() > 64 && self.pattern.as_str() == DEFAULT_CID_PATTERN {
            "longer than 64 characters"
        } else if !self.pattern.is_match(value) {
            return Err(InvalidCid {
                value: value.to_owned(),
                reason: self.mismatch(),
            });
        } else {
            return Ok(Cid(value.to_owned()));
        };
        Err(InvalidCid {
            value: value.to_owned(),
            reason: reason.to_owned(),
        })
    }

    /// Checks every CID; any invalid one rejects the whole list, naming each.
    pub fn parse_list(&self, raw: &RawCids, max: usize) -> Result<CidList, CidListError> {
        let mut valid = Vec::with_capacity(raw.0.len());
        let mut invalid = Vec::new();
        for value in &raw.0 {
            match self.parse_one(value) {
                Ok(cid) => valid.push(cid),
                Err(bad) => invalid.push(bad),
            }
        }
        if !invalid.is_empty() {
            return Err(CidListError::Invalid(invalid));
        }
        if valid.is_empty() {
            return Err(CidListError::NoCids);
        }
        if valid.len() > max {
            return Err(CidListError::TooMany {
                max,
                count: valid.len(),
            });
        }
        Ok(CidList(valid))
    }
}

impl Default for CidPolicy {
    fn default() -> Self {
        Self::new(DEFAULT_CID_PATTERN).expect("the default CID pattern compiles")
    }
}

/// A non-empty list of valid, distinct CIDs within the action's limit, in the
/// order the user gave them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CidList(Vec<Cid>);

impl CidList {
    pub fn as_slice(&self) -> &[Cid] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a file of CIDs could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidFileError {
    #[error("the file is not text (UTF-8): is it a spreadsheet? Save it as CSV or text first")]
    NotText,
    #[error("the CSV file could not be read: {0}")]
    BadCsv(String),
}

/// The first lines a person's list may start with that name the column
/// rather than a customer (SPEC §16), compared trimmed and lower-cased. The
/// Customer Set page applies the same list in `static/cids.js`.
pub const HEADER_WORDS: [&str; 9] = [
    "cid",
    "cids",
    "customer",
    "customers",
    "customer id",
    "customer ids",
    "customer_id",
    "customerid",
    "id",
];

/// True when `line`, as the first line of a list, is a header to leave out.
pub fn is_header_line(line: &str) -> bool {
    let plain = line.trim().to_lowercase();
    HEADER_WORDS.contains(&plain.as_str())
}

/// The value a line of a list holds: a line with a tab is a spreadsheet
/// row, and only its first cell is a CID.
fn first_cell(line: &str) -> (&str, bool) {
    match line.split_once('\t') {
        Some((cell, _)) => (cell.trim(), true),
        None => (line.trim(), false),
    }
}

/// What a file of CIDs held, and what was left out of it on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidFile {
    pub cids: CidsInput,
    /// The header line left out, as the file had it (a text file's first
    /// line among `HEADER_WORDS`, or a CSV file's header row).
    pub header: Option<String>,
    /// Lines of a text file that were spreadsheet rows (a tab in them):
    /// only their first cell was kept.
    pub rows_with_extra_cells: usize,
}

/// The CIDs of a file: a text file holds a CID per line (a first line that
/// is a header, `HEADER_WORDS`, left out; of a line with a tab, its first
/// cell only, as a spreadsheet's column pasted into the page); a CSV file
/// (named `.csv`, or whose first line has a comma) gives the column headed
/// `cid` (any case), else its first column, the header row left out.
pub fn cids_from_file(name: &str, bytes: &[u8]) -> Result<CidFile, CidFileError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CidFileError::NotText)?;
    if text.contains('\0') {
        return Err(CidFileError::NotText);
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line = text.lines().next().unwrap_or_default();
    let is_csv = name.to_ascii_lowercase().ends_with(".csv") || first_line.contains(',');
    if !is_csv {
        let mut lines = text.lines().peekable();
        let header = lines
            .next_if(|l| is_header_line(first_cell(l).0))
            .map(|l| l.trim().to_owned());
        let mut rows_with_extra_cells = 0;
        let mut cids = Vec::new();
        for line in lines {
            // A line is one value: "bad value" is refused, not read as two CIDs.
            let (value, extra) = first_cell(line);
            rows_with_extra_cells += usize::from(extra);
            if !value.is_empty() {
                cids.push(value.to_owned());
            }
        }
        return Ok(CidFile {
            cids: CidsInput::List(cids),
            header,
            rows_with_extra_cells,
        });
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| CidFileError::BadCsv(e.to_string()))?
        .clone();
    let column = headers
        .iter()
        .position(|h| h.eq_ignore_ascii_case("cid"))
        .unwrap_or(0);
    let mut cids = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| CidFileError::BadCsv(e.to_string()))?;
        if let Some(value) = record.get(column).filter(|v| !v.is_empty()) {
            cids.push(value.to_owned());
        }
    }
    Ok(CidFile {
        cids: CidsInput::List(cids),
        header: Some(first_line.trim().to_owned()).filter(|h| !h.is_empty()),
        rows_with_extra_cells: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn files_give_a_cid_per_line_or_the_cid_column_of_a_csv() {
        let text = |file: CidFile| RawCids::from_input(&file.cids).values().to_vec();
        assert_eq!(
            text(cids_from_file("list.txt", b"C1\nC2\r\n\nC3\n").unwrap()),
            ["C1", "C2", "C3"]
        );
        assert_eq!(
            text(cids_from_file("export.csv", b"Name,CID\nAcme Corp,C1\nBeta,C2\n").unwrap()),
            ["C1", "C2"]
        );
        assert_eq!(
            text(
                cids_from_file(
                    "export.csv",
                    b"\xef\xbb\xbfcustomer,name\nC1,Acme\nC2,Beta\n"
                )
                .unwrap()
            ),
            ["C1", "C2"],
            "without a cid column, the first column, header left out"
        );
        assert_eq!(
            text(cids_from_file("list.txt", b"C1\nbad value\n").unwrap()),
            ["C1", "bad value"],
            "a line is one value, to be refused when it is not a CID"
        );
        assert_eq!(
            text(cids_from_file("noext", b"cid,n\nC1,1\n").unwrap()),
            ["C1"],
            "a comma on the first line makes it CSV"
        );
        assert_eq!(
            text(cids_from_file("empty.txt", b"").unwrap()),
            Vec::<String>::new()
        );
        assert_eq!(
            cids_from_file("x.xlsx", b"PK\x03\x04\x00\xff"),
            Err(CidFileError::NotText)
        );
        assert_eq!(
            cids_from_file("x.bin", b"C1\x00C2"),
            Err(CidFileError::NotText)
        );
    }

    #[test]
    fn a_text_file_leaves_out_a_header_line_and_keeps_a_rows_first_cell() {
        let file = cids_from_file(
            "paste.txt",
            b" Customer ID \nTAB001\tAcme Corp\nTAB002\nTAB003\tBeta\tEU\n",
        )
        .unwrap();
        assert_eq!(
            RawCids::from_input(&file.cids).values(),
            ["TAB001", "TAB002", "TAB003"]
        );
        assert_eq!(file.header.as_deref(), Some("Customer ID"));
        assert_eq!(file.rows_with_extra_cells, 2);
        for word in HEADER_WORDS {
            assert!(
                is_header_line(&format!("  {}  ", word.to_uppercase())),
                "{word}"
            );
        }
        // A header word is a header only as the first line; a CID is never one.
        let file = cids_from_file("list.txt", b"C1\nid\n").unwrap();
        assert_eq!(RawCids::from_input(&file.cids).values(), ["C1", "id"]);
        assert_eq!(file.header, None);
        assert!(!is_header_line("customer-id") && !is_header_line("C1"));
        // A spreadsheet's header row: its first cell decides.
        let file = cids_from_file("rows.txt", b"CID\tName\nC9\tAcme\n").unwrap();
        assert_eq!(RawCids::from_input(&file.cids).values(), ["C9"]);
        assert_eq!(file.header.as_deref(), Some("CID\tName"));
    }

    fn parse_text(text: &str) -> Result<CidList, CidListError> {
        CidPolicy::default().parse_list(&RawCids::from_input(&CidsInput::Text(text.into())), 500)
    }

    fn strings(list: &CidList) -> Vec<&str> {
        list.as_slice().iter().map(Cid::as_str).collect()
    }

    #[test]
    fn text_splits_on_commas_spaces_tabs_and_newlines() {
        let list = parse_text("C1,C2 C3\tC4\nC5\r\nC6 ,, C7").unwrap();
        assert_eq!(strings(&list), ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]);
    }

    #[test]
    fn repeats_collapse_keeping_the_first_occurrence_and_the_order() {
        let list = parse_text("B2 A1 B2 C3 A1").unwrap();
        assert_eq!(strings(&list), ["B2", "A1", "C3"]);
    }

    #[test]
    fn array_items_are_trimmed_but_not_split() {
        let raw = RawCids::from_input(&CidsInput::List(vec![
            " C1 ".into(),
            "a b".into(),
            "a,b".into(),
        ]));
        let err = CidPolicy::default().parse_list(&raw, 500).unwrap_err();
        let CidListError::Invalid(invalid) = err else {
            panic!("expected invalid")
        };
        let values: Vec<_> = invalid.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(values, ["a b", "a,b"]);
    }

    #[test]
    fn blank_text_and_empty_array_have_no_cids() {
        assert_eq!(parse_text("  \n\t, "), Err(CidListError::NoCids));
        let raw = RawCids::from_input(&CidsInput::List(vec![]));
        assert_eq!(
            CidPolicy::default().parse_list(&raw, 500),
            Err(CidListError::NoCids)
        );
    }

    #[test]
    fn a_value_breaking_the_pattern_is_told_what_a_cid_looks_like() {
        let bad = CidPolicy::default().parse_one("x!y").expect_err("invalid");
        assert_eq!(bad.reason, DEFAULT_CID_RULE);
        assert!(bad.reason.contains("letters, digits"), "{}", bad.reason);
        let custom = CidPolicy::new("^C[0-9]+$").expect("pattern");
        let bad = custom.parse_one("D1").expect_err("invalid");
        assert_eq!(
            bad.reason,
            "does not match the customer ID pattern ^C[0-9]+$"
        );
    }

    #[test]
    fn an_empty_array_item_is_invalid() {
        let raw = RawCids::from_input(&CidsInput::List(vec!["C1".into(), "  ".into()]));
        assert!(matches!(
            CidPolicy::default().parse_list(&raw, 500),
            Err(CidListError::Invalid(_))
        ));
    }

    #[test]
    fn the_limit_counts_cids_after_repeats_collapse() {
        let policy = CidPolicy::default();
        let raw = RawCids::from_input(&CidsInput::Text("A A B B C".into()));
        assert!(policy.parse_list(&raw, 3).is_ok());
        assert_eq!(
            policy.parse_list(&raw, 2),
            Err(CidListError::TooMany { max: 2, count: 3 })
        );
    }

    #[test]
    fn each_invalid_value_is_named_with_a_reason() {
        let err = parse_text("ok1 -bad ok2 x!y").unwrap_err();
        let CidListError::Invalid(invalid) = err else {
            panic!("expected invalid")
        };
        assert_eq!(invalid.len(), 2);
        assert_eq!(invalid[0].value, "-bad");
        assert_eq!(invalid[1].value, "x!y");
        assert!(invalid.iter().all(|i| !i.reason.is_empty()));
    }

    #[test]
    fn the_longest_valid_cid_is_64_characters() {
        assert!(parse_text(&"a".repeat(64)).is_ok());
        assert!(parse_text(&"a".repeat(65)).is_err());
    }

    #[test]
    fn a_custom_pattern_is_honoured() {
        let policy = CidPolicy::new("^C[0-9]+$").unwrap();
        assert!(policy.parse_one("C123").is_ok());
        assert!(policy.parse_one("X123").is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_valid_results_obey_every_rule(text in "\\PC{0,200}") {
            if let Ok(list) = parse_text(&text) {
                let policy = CidPolicy::default();
                prop_assert!(!list.is_empty() && list.len() <= 500);
                let mut seen = std::collections::HashSet::new();
                for cid in list.as_slice() {
                    prop_assert!(policy.parse_one(cid.as_str()).is_ok());
                    prop_assert!(seen.insert(cid.as_str()));
                }
            }
        }

        #[test]
        fn joining_valid_cids_with_any_separators_gives_them_back(
            cids in proptest::collection::vec("[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", 1..40),
            seps in proptest::collection::vec(prop_oneof![Just(","), Just(" "), Just("\t"), Just("\n"), Just(", ")], 40),
        ) {
            let mut text = String::new();
            for (i, cid) in cids.iter().enumerate() {
                text.push_str(cid);
                text.push_str(seps[i]);
            }
            let list = parse_text(&text).unwrap();
            let mut expected: Vec<&str> = Vec::new();
            for cid in &cids {
                if !expected.contains(&cid.as_str()) {
                    expected.push(cid);
                }
            }
            prop_assert_eq!(strings(&list), expected);
        }

        #[test]
        fn string_and_array_forms_give_the_same_set(cids in proptest::collection::vec("[A-Z][0-9]{1,4}", 1..30)) {
            let from_text = RawCids::from_input(&CidsInput::Text(cids.join(" ")));
            let from_list = RawCids::from_input(&CidsInput::List(cids.clone()));
            prop_assert_eq!(from_text.sorted_set(), from_list.sorted_set());
        }
    }
}
