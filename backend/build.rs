//! Records the git commit for `/api/v2/version` and makes the binary re-embed the UI when
//! `frontend/dist` changes.

use std::path::Path;
use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    if let Some(sha) = git(&["rev-parse", "HEAD"]) {
        println!("cargo:rustc-env=UPDRAFT_GIT_VERSION={sha}");
    }
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        // HEAD moves on checkout; the ref it points at moves on commit.
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let path = format!("{git_dir}/{head_ref}");
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    // Cargo scans a watched directory whole. While `dist/` does not exist yet, watching all of
    // `frontend/` notices its creation (a missing path would count as changed on every build).
    if Path::new("../frontend/dist").exists() {
        println!("cargo:rerun-if-changed=../frontend/dist");
    } else {
        println!("cargo:rerun-if-changed=../frontend");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
