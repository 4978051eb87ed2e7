//! npm packages the tests need, installed under `<repo>/.tools/<folder>` once per checkout.
//!
//! # Rules
//!
//! 1. A package is installed once however many test binaries ask for it at the same moment: the install runs under
//!    an exclusive lock on `.tools/npm.lock` (the system releases it when its holder ends, however it ends).
//! 2. npm installs into a folder of its own that is renamed to `.tools/<folder>` once npm has finished: a
//!    half-finished install never has that name. The marker, a file the finished install holds, says it is there.
//! 3. The one thing a newcomer must provide is npm (with Node.js 20 or later); without it the panic says so.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `<repo>/.tools/<folder>`, holding `package@version` (npm's exact spelling), installed if `marker` (a path
/// inside the folder) is not there yet; `purpose` finishes the sentence "to run ..." when npm is missing.
pub(crate) fn install(folder: &str, package: &str, marker: &str, purpose: &str) -> PathBuf {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools");
    let home = tools.join(folder);
    if home.join(marker).exists() {
        return home;
    }
    fs::create_dir_all(&tools).unwrap_or_else(|error| panic!("{}: {error}", tools.display()));
    let lock_path = tools.join("npm.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|error| panic!("{}: {error}", lock_path.display()));
    lock.lock().unwrap_or_else(|error| panic!("locking {}: {error}", lock_path.display()));
    // Another test binary may have installed it while this one waited for the lock.
    if home.join(marker).exists() {
        return home;
    }
    // Whatever is there is unfinished: an install folder of a process that died, or an interrupted install in place.
    let staging_prefix = format!("{folder}.installing-");
    for entry in fs::read_dir(&tools).unwrap().map_while(Result::ok) {
        if entry.file_name().to_string_lossy().starts_with(&staging_prefix) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    let _ = fs::remove_dir_all(&home);
    let staging = tools.join(format!("{staging_prefix}{}", std::process::id()));
    // Straight to the process's standard error, past the test harness's capture: the install takes a while.
    let _ = writeln!(std::io::stderr(), "installing {package} with npm under {} (once)", home.display());
    let npm = Command::new("npm")
        .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
        .arg(&staging)
        .arg(package)
        .stdin(Stdio::null())
        .output();
    match npm {
        Err(error) if error.kind() == ErrorKind::NotFound => {
            panic!("npm not found: install Node.js 20 or later with npm to run {purpose}")
        }
        Err(error) => panic!("npm does not run: {error}"),
        Ok(output) if !output.status.success() => panic!(
            "npm could not install {package}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Ok(_) => {}
    }
    fs::rename(&staging, &home).unwrap_or_else(|error| panic!("{} to {}: {error}", staging.display(), home.display()));
    assert!(home.join(marker).exists(), "npm installed no {}", home.join(marker).display());
    home
}
