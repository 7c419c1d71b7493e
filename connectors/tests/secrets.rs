//! A secret set in the environment (or written to a key file) never shows up in `Debug` or
//! `Display` output, in error messages, or in a serialized report of where it came from.
//!
//! Setting environment variables inside a threaded test binary is unsound, so the parent test
//! re-runs this binary with the variables set and runs [`child_formats_everything_it_can`] in it,
//! then checks that the secret bytes occur nowhere in the child's stdout and stderr either.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;
use std::process::Command;

use crossbar_connectors::auth::binance::BinanceKey;
use crossbar_connectors::auth::{AuthError, Ed25519Signer, HmacSigner, KeySource, SecretString};
use serde::Serialize;

/// Marks the re-run child; the child test does nothing without it.
const CHILD_MARKER: &str = "CROSSBAR_SECRETS_TEST_CHILD";
/// Holds a well-formed API secret.
const VAR_SECRET: &str = "CROSSBAR_SECRETS_TEST_API_SECRET";
/// Holds text that is not a PEM key but contains the secret (a key pasted into the wrong variable).
const VAR_BAD_PEM: &str = "CROSSBAR_SECRETS_TEST_BAD_PEM";
/// Holds the secret followed by bytes that are not UTF-8.
const VAR_NOT_UTF8: &str = "CROSSBAR_SECRETS_TEST_NOT_UTF8";
/// Never set.
const VAR_UNSET: &str = "CROSSBAR_SECRETS_TEST_UNSET";

/// The secret: distinctive enough that a substring search cannot hit by chance.
const SECRET: &str = "Zq7vN3xK9pLmW2rT8sYb4HfJc6GdA1eU";

/// What a run report might carry about a venue's credentials.
#[derive(Serialize)]
struct CredentialsReport<'a> {
    venue: &'static str,
    api_secret_source: &'a KeySource,
    api_secret: &'a SecretString,
}

fn secret_file(tag: &str, content: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("crossbar-secrets-{}-{tag}.key", std::process::id()));
    std::fs::write(&path, content).unwrap();
    path
}

/// Everything the child formats, gathered so it can be checked and then printed.
fn formatted_everything() -> Vec<String> {
    let mut seen = Vec::new();
    let mut record = |label: &str, text: String| seen.push(format!("{label}: {text}"));

    // From the environment: the loaded value, its source, signers built from it.
    let source = KeySource::env(VAR_SECRET);
    let loaded = source.load().expect("the child has the variable set");
    assert_eq!(loaded.expose(), SECRET, "trimmed value loads");
    record("secret debug", format!("{loaded:?}"));
    record("secret display", format!("{loaded}"));
    record("secret json", serde_json::to_string(&loaded).unwrap());
    record("source debug", format!("{source:?}"));
    record("source describe", source.describe());
    let signer = HmacSigner::new(&loaded);
    record("hmac signer", format!("{signer:?}"));
    record("binance key", format!("{:?}", BinanceKey::Hmac(signer)));
    let report = CredentialsReport { venue: "binance", api_secret_source: &source, api_secret: &loaded };
    record("report json", serde_json::to_string_pretty(&report).unwrap());

    // From a key file: same.
    let path = secret_file("good", format!("{SECRET}\n").as_bytes());
    let file_source = KeySource::file(&path);
    let from_file = file_source.load().unwrap();
    assert_eq!(from_file.expose(), SECRET, "trailing newline trimmed");
    record("file secret debug", format!("{from_file:?}"));
    record("file source json", serde_json::to_string(&file_source).unwrap());

    // Errors, each with Display and Debug.
    let mut record_err = |label: &str, err: AuthError| {
        record(&format!("{label} display"), err.to_string());
        record(&format!("{label} debug"), format!("{err:?}"));
    };
    let bad_pem = Ed25519Signer::from_key_source(&KeySource::env(VAR_BAD_PEM)).unwrap_err();
    assert!(matches!(&bad_pem, AuthError::InvalidEd25519Key { origin } if origin.contains(VAR_BAD_PEM)));
    record_err("bad pem env", bad_pem);
    let not_utf8 = KeySource::env(VAR_NOT_UTF8).load().unwrap_err();
    assert!(matches!(&not_utf8, AuthError::EnvNotUnicode { var } if var == VAR_NOT_UTF8));
    record_err("not utf8 env", not_utf8);
    let unset = KeySource::env(VAR_UNSET).load().unwrap_err();
    assert!(matches!(&unset, AuthError::EnvMissing { var } if var == VAR_UNSET));
    record_err("unset env", unset);

    let pem_path =
        secret_file("badpem", format!("-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n").as_bytes());
    let bad_pem_file = Ed25519Signer::from_key_source(&KeySource::file(&pem_path)).unwrap_err();
    assert!(bad_pem_file.to_string().contains(&pem_path.display().to_string()), "names the file");
    record_err("bad pem file", bad_pem_file);
    let mut not_utf8_bytes = SECRET.as_bytes().to_vec();
    not_utf8_bytes.extend_from_slice(&[0xff, 0xfe]);
    let bin_path = secret_file("binary", &not_utf8_bytes);
    let bin_err = KeySource::file(&bin_path).load().unwrap_err();
    assert!(matches!(&bin_err, AuthError::FileNotUtf8 { path } if *path == bin_path));
    record_err("binary file", bin_err);
    let both = KeySource { env: Some(VAR_SECRET.into()), file: Some(path.clone()) };
    record_err("ambiguous", both.load().unwrap_err());

    for p in [&path, &pem_path, &bin_path] {
        let _ = std::fs::remove_file(p);
    }
    seen
}

/// Runs only when re-executed by [`secret_from_environment_never_leaks`].
#[test]
fn child_formats_everything_it_can() {
    if std::env::var_os(CHILD_MARKER).is_none() {
        return;
    }
    for line in formatted_everything() {
        assert!(!line.contains(SECRET), "secret leaked in `{line}`");
        // Print it all: the parent also scans this output.
        println!("{line}");
        eprintln!("{line}");
    }
    println!("CHILD-DONE");
}

#[test]
fn secret_from_environment_never_leaks() {
    let mut not_utf8 = SECRET.as_bytes().to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe, 0x80]);
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_formats_everything_it_can", "--nocapture", "--test-threads=1"])
        .env(CHILD_MARKER, "1")
        .env(VAR_SECRET, format!("  {SECRET}\n"))
        .env(VAR_BAD_PEM, format!("-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----"))
        .env(VAR_NOT_UTF8, OsStr::from_bytes(&not_utf8))
        .env_remove(VAR_UNSET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("CHILD-DONE"), "child test did not run:\n{stdout}");
    assert!(stdout.contains("report json"), "child printed its report:\n{stdout}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET), "secret in child output");
    // The redaction marker is what appears instead.
    assert!(stdout.contains("***"));
}

#[test]
fn key_source_config_is_strict_and_validated() {
    let ok: KeySource = toml::from_str("env = \"BINANCE_API_SECRET\"").unwrap();
    assert_eq!(ok, KeySource::env("BINANCE_API_SECRET"));
    assert!(ok.validate().is_ok());
    let file: KeySource = toml::from_str("file = \"/etc/crossbar/binance.pem\"").unwrap();
    assert_eq!(file.describe(), "file `/etc/crossbar/binance.pem`");
    assert!(toml::from_str::<KeySource>("value = \"inline-secret\"").is_err(), "no inline secrets");
    let none: KeySource = toml::from_str("").unwrap();
    assert!(matches!(none.validate(), Err(AuthError::NoSource)));
    let both: KeySource = toml::from_str("env = \"A\"\nfile = \"/b\"").unwrap();
    assert!(matches!(both.validate(), Err(AuthError::AmbiguousSource { .. })));
    assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"env":"BINANCE_API_SECRET"}"#);
}

#[test]
fn empty_file_and_missing_file_are_named_errors() {
    let empty = secret_file("empty", b" \n\t\n");
    let err = KeySource::file(&empty).load().unwrap_err();
    assert!(matches!(&err, AuthError::FileEmpty { path } if *path == empty));
    let _ = std::fs::remove_file(&empty);
    let missing = std::env::temp_dir().join("crossbar-secrets-does-not-exist.key");
    let err = KeySource::file(&missing).load().unwrap_err();
    assert!(err.to_string().contains("crossbar-secrets-does-not-exist.key"), "{err}");
    assert!(!err.is_retryable());
}
