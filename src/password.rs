//! Password hashing (Argon2id), kept apart because it is the one thing the
//! server does that costs ~19 MiB and tens of milliseconds of a core per
//! call: every login, password change, user creation and the first `admin`
//! hashes or verifies a password. Unbounded, a login storm runs one hash per
//! blocking-pool thread at once (hundreds, each with its 19 MiB), so here
//! hashes take turns: at most one per core runs, the others wait without
//! holding a thread.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use argon2::password_hash::{
    self, rand_core::OsRng, Decimal, Ident, Output, ParamsString, PasswordHash, PasswordHasher,
    PasswordVerifier, Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// A hash verified when the username does not exist or has no password, so
/// the answer takes as long as for a real user and does not reveal which
/// names exist. Same parameters as every hash made here.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2xS0Gp0b1pUH+bC2xm6BWmGHr6wqKiY1sZ0pRB2nHbo";

/// The hashes of the whole process take turns through this one limiter.
static HASHING: LazyLock<Limiter> = LazyLock::new(|| Limiter::new(machine_parallelism()));

/// The cores this process may use: more hashes at once than that would only
/// share the cores and hold more memory for the same throughput.
fn machine_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Runs CPU- and memory-heavy work on tokio's blocking pool, at most
/// `permits` at a time. A caller waits for a permit asynchronously, before a
/// thread is taken; the permit moves into the blocking task, so it is held
/// while the work runs even if the caller stops waiting (a client that
/// disconnects does not free its slot while its hash still runs).
struct Limiter {
    permits: Semaphore,
    /// Work running now, and the most ever running at once: only tests read
    /// them, to check the bound.
    running: AtomicUsize,
    most_running: AtomicUsize,
}

impl Limiter {
    fn new(permits: usize) -> Self {
        Self {
            permits: Semaphore::new(permits),
            running: AtomicUsize::new(0),
            most_running: AtomicUsize::new(0),
        }
    }

    async fn run<T, F>(&'static self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit =
            self.permits.acquire().await.map_err(|e| {
                Error::Internal(anyhow::anyhow!("The password hashing limiter: {e}"))
            })?;
        tokio::task::spawn_blocking(move || {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(now, Ordering::SeqCst);
            let out = work();
            self.running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            out
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("A password hashing task failed: {e}")))
    }
}

/// Hashes a password with Argon2id and the crate's recommended parameters
/// (m=19456, t=2, p=1) into a PHC string, off the async threads and taking
/// turns with every other hash.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    HASHING
        .run(move || {
            let salt = SaltString::generate(&mut OsRng);
            OwnMemory
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::Internal(anyhow::anyhow!("Failed to hash a password: {e}")))
        })
        .await?
}

/// Whether `password` matches the PHC string `hash`. With no hash (no such
/// user, or one without a password) it verifies against a dummy hash, so it
/// takes as long, and answers false.
pub async fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let known = hash.is_some();
    let (password, hash) = (password.to_owned(), hash.unwrap_or(DUMMY_HASH).to_owned());
    let matches = HASHING
        .run(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                OwnMemory
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
    known && matches
}

/// Blocks (1 KiB each) reserved for every hash's working memory, at least:
/// 33 MiB, above the 32 MiB that glibc's malloc never raises its mmap
/// threshold past (`DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit).
///
/// Why: glibc raises that threshold to the size of the first large block
/// freed, so from the second hash on, Argon2's own 19 MiB allocation comes
/// from a malloc arena, and each arena (up to 8 per core, one per thread that
/// hashed) keeps its freed 19 MiB for good: measured, 400 MiB held after 50
/// sequential user creations. A request above 32 MiB is always served by its
/// own mapping and unmapped when freed, whatever the threshold is, so each
/// hash's memory goes back to the system when the hash ends. Only the
/// `block_count` blocks Argon2 uses are ever written: the rest of the
/// reservation is address space, never resident. Other allocators simply
/// reserve a little more address space.
const RESERVED_BLOCKS: usize = 33 * 1024;

/// Argon2 with working memory allocated here (see `RESERVED_BLOCKS`) rather
/// than by the crate. Hashes and verifies exactly as `Argon2::default()` does:
/// the same PHC strings, the same defaults (Argon2id, v=19, m=19456, t=2,
/// p=1), and, through the crate's blanket `PasswordVerifier`, parameters
/// read from each stored hash and a constant-time comparison of the output.
struct OwnMemory;

impl PasswordHasher for OwnMemory {
    type Params = Params;

    // Follows `argon2::Argon2::hash_password_customized` (0.5), with
    // `hash_password_into_with_memory` in place of `hash_password_into`.
    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        algorithm: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let algorithm = algorithm
            .map(Algorithm::try_from)
            .transpose()?
            .unwrap_or_default();
        let version = version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let salt = salt.into();
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buf)?;
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let mut memory = Vec::with_capacity(params.block_count().max(RESERVED_BLOCKS));
        memory.resize(params.block_count(), Block::new());
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let output = Output::init_with(output_len, |out| {
            Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, &mut memory)?)
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }
}

/// A readable random password for generated accounts: 20 characters from an
/// alphabet without look-alikes (no 0/O, 1/l/I), about 116 bits.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn hashed_passwords_verify_and_wrong_ones_do_not() {
        let hash = hash_password("correct horse").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse", Some(&hash)).await);
        assert!(!verify_password("wrong horse", Some(&hash)).await);
        assert!(!verify_password("correct horse", Some("not a PHC string")).await);
    }

    /// Hashes stored before this module existed were made by the crate's own
    /// allocation; both ways must keep verifying.
    #[tokio::test]
    async fn hashes_match_the_crates_own() {
        let salt = SaltString::generate(&mut OsRng);
        let stock = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let ours = OwnMemory
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert_eq!(ours, stock);
        assert!(verify_password("correct horse", Some(&stock)).await);
        let ours = hash_password("correct horse").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
    }

    #[tokio::test]
    async fn the_dummy_hash_costs_what_a_real_one_does_and_never_matches() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let real = hash_password("correct horse").await.unwrap();
        let real = PasswordHash::new(&real).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params, "same cost as a real hash");
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
        assert!(!verify_password("anything", None).await);
        assert!(!verify_password("anything", Some(DUMMY_HASH)).await);
    }

    #[tokio::test]
    async fn the_limiter_runs_at_most_its_permits_at_once() {
        let limiter: &'static Limiter = Box::leak(Box::new(Limiter::new(3)));
        let tasks: Vec<_> = (0..3 + 5)
            .map(|n| {
                tokio::spawn(limiter.run(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    n
                }))
            })
            .collect();
        for (n, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap(), n);
        }
        assert_eq!(limiter.most_running.load(Ordering::SeqCst), 3);
        assert_eq!(limiter.running.load(Ordering::SeqCst), 0);
        assert_eq!(limiter.permits.available_permits(), 3);
    }

    /// The real thing: more hashes and verifications at once than the machine
    /// has cores never run more than one per core.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_hashes_never_exceed_the_machines_parallelism() {
        let cores = machine_parallelism();
        let hash = hash_password("correct horse").await.unwrap();
        let tasks: Vec<_> = (0..cores + 5)
            .map(|n| {
                let hash = hash.clone();
                tokio::spawn(async move {
                    if n % 2 == 0 {
                        verify_password("correct horse", Some(&hash)).await
                    } else {
                        hash_password("another horse").await.is_ok()
                    }
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap());
        }
        let most = HASHING.most_running.load(Ordering::SeqCst);
        assert!(
            (1..=cores).contains(&most),
            "{most} at once on {cores} cores"
        );
    }

    #[test]
    fn generated_passwords_are_20_unambiguous_characters() {
        let a = generate_password();
        assert_eq!(a.chars().count(), 20);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c)));
        assert_ne!(a, generate_password());
    }
}
