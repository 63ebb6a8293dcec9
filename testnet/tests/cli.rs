//! `phalanx-testnet run` refuses what it cannot run with exit status 2 and
//! a message naming the problem, before starting anything. (Runs against
//! real testnets are in `node/tests/scenarios.rs`.)

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_phalanx-testnet")).args(args).output().expect("run phalanx-testnet");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_bad_scenario_file_exits_2_naming_the_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "name = \"bad\"\nvalidators = 4\nduration = 10\n\n[[at]]\ns = 1\ndo = \"explode\"\n")
        .unwrap();
    let (code, err) = run(&["run", file.to_str().unwrap(), "--bin", "/nonexistent"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml:5: at[0].do: unknown action \"explode\""), "{err}");
}

#[test]
fn a_missing_scenario_file_exits_2() {
    let (code, err) = run(&["run", "/nonexistent/scenario.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read the scenario"), "{err}");
}

#[test]
fn a_missing_phalanx_binary_exits_2_before_starting_anything() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/leader-crash.toml");
    let out = tempfile::tempdir().unwrap();
    let (code, err) = run(&["run", file, "--bin", "/nonexistent/phalanx", "--out", out.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the phalanx binary /nonexistent/phalanx does not exist"), "{err}");
}
