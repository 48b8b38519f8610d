//! The documentation stands on its own: the API guide's list of operations
//! is the served OpenAPI document's, and no link leads outside the
//! repository or to a file that is not there.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

const BEGIN: &str = "<!-- operations: generated from the OpenAPI document, do not edit -->";
const END: &str = "<!-- end of operations -->";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The table of every operation, in the document's order: method, path,
/// the first paragraph of its description, and the statuses it answers.
fn operations_table(document: &Value) -> String {
    let mut table = String::from("| Operation | What | Answers |\n|---|---|---|\n");
    let paths = document["paths"]
        .as_object()
        .expect("the document has paths");
    for (path, item) in paths {
        let operations = item.as_object().expect("a path item is an object");
        for (method, operation) in operations {
            let summary = operation["summary"]
                .as_str()
                .or_else(|| operation["description"].as_str())
                .unwrap_or("")
                .split("\n\n")
                .next()
                .unwrap_or("")
                .replace('\n', " ")
                .replace('|', "\\|");
            let statuses: Vec<&str> = operation["responses"]
                .as_object()
                .map(|responses| responses.keys().map(String::as_str).collect())
                .unwrap_or_default();
            writeln!(
                table,
                "| `{} {path}` | {summary} | {} |",
                method.to_uppercase(),
                statuses.join(", ")
            )
            .expect("writing to a string");
        }
    }
    table
}

#[test]
fn the_api_guide_lists_every_operation_of_the_openapi_document() {
    // Arrange
    let guide_path = repository().join("docs/api.md");
    let guide = std::fs::read_to_string(&guide_path).expect("docs/api.md");
    let expected = operations_table(&tms_dashboard::http::openapi::document());

    // Act
    let (before, rest) = guide
        .split_once(BEGIN)
        .expect("docs/api.md has the generated operations block");
    let (current, after) = rest
        .split_once(END)
        .expect("the operations block is closed");

    // Assert
    if current.trim() != expected.trim() {
        if std::env::var_os("TMS_UPDATE_DOCS").is_some() {
            std::fs::write(
                &guide_path,
                format!("{before}{BEGIN}\n{expected}{END}{after}"),
            )
            .expect("rewriting docs/api.md");
        } else {
            panic!(
                "docs/api.md lists other operations than the OpenAPI document; regenerate it with \
                 TMS_UPDATE_DOCS=1 cargo nextest run --test api -E 'test(/^docs::/)'\n\
                 expected:\n{expected}"
            );
        }
    }
}

/// Every `[text](target)` of a Markdown file whose target is not a URL.
fn relative_links(markdown: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = &rest[..end];
        if !target.contains("://") && !target.starts_with('#') && !target.starts_with("mailto:") {
            links.push(target.split('#').next().unwrap_or("").to_owned());
        }
        rest = &rest[end..];
    }
    links
}

fn documentation_files() -> Vec<PathBuf> {
    let mut files = vec![
        repository().join("README.md"),
        repository().join("ARCHITECTURE.md"),
    ];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repository().join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn every_link_in_the_documentation_names_a_file_of_the_repository() {
    for file in documentation_files() {
        let text = std::fs::read_to_string(&file).expect("a documentation file");
        let folder = file.parent().unwrap_or(Path::new("."));
        for link in relative_links(&text) {
            let target = folder.join(&link);
            assert!(
                target.exists(),
                "{} links to {link}, which is not in the repository",
                file.display()
            );
            let canonical = target.canonicalize().expect("an existing path");
            assert!(
                canonical.starts_with(repository().canonicalize().expect("the repository")),
                "{} links to {link}, outside the repository",
                file.display()
            );
        }
        for outside in ["SPEC.md", "../shared", "legacy-flask-jobs.db", "uuidgen"] {
            assert!(
                !text.contains(outside),
                "{} mentions {outside}, which a fresh clone does not have",
                file.display()
            );
        }
    }
}
