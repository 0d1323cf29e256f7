//! Build script: embeds what `GET /version` reports.
//!
//! - `STELLA_GIT_SHA`: the environment variable when set, else
//!   `git rev-parse HEAD`, else `unknown` (a source tree without `.git`).
//! - `STELLA_BUILD_DATE` (RFC 3339, UTC): the environment variable when
//!   set, else `SOURCE_DATE_EPOCH`, else the time of the HEAD commit, else
//!   `unknown`. Never the wall clock, so two builds of one commit are the
//!   same bytes.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    for var in ["STELLA_GIT_SHA", "STELLA_BUILD_DATE", "SOURCE_DATE_EPOCH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    watch_git_head();
    let sha = env("STELLA_GIT_SHA")
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let date = env("STELLA_BUILD_DATE")
        .or_else(|| env("SOURCE_DATE_EPOCH").and_then(|s| s.parse().ok().map(rfc3339)))
        .or_else(|| git(&["log", "-1", "--format=%ct"]).and_then(|s| s.parse().ok().map(rfc3339)))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=STELLA_GIT_SHA={sha}");
    println!("cargo:rustc-env=STELLA_BUILD_DATE={date}");
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Re-runs this script when HEAD moves (a commit, a checkout).
fn watch_git_head() {
    let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) else {
        return;
    };
    let common = git(&["rev-parse", "--git-common-dir"])
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { git_dir.join(p) })
        .unwrap_or_else(|| git_dir.clone());
    println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
    println!(
        "cargo:rerun-if-changed={}",
        common.join("packed-refs").display()
    );
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        println!(
            "cargo:rerun-if-changed={}",
            common.join(reference).display()
        );
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (UTC, proleptic
/// Gregorian; days to civil date after H. Hinnant's published algorithm).
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}
