//! `devid match`, the real binary: one output line per distinct input pair, names and
//! emails exactly as read, and a clear error naming the line of a malformed file.

use std::process::Command;

fn devid_match(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_devid")).arg("match").args(args).output().expect("run devid match")
}

#[test]
fn every_distinct_pair_gets_a_person_and_placeholders_join_nobody() {
    let dir = tempfile::tempdir().expect("dir");
    let input = dir.path().join("authors.csv");
    std::fs::write(
        &input,
        "author_name,author_email,extra\n\
         Jane Doe,jane@corp.com,x\n\
         \"Doe, Jane\",JANE@corp.com,y\n\
         Jane Doe,jane@corp.com,again\n\
         Zé Vinícius,jvmirca@gmail.com,\n\
         Alice Smith,devnull@localhost,\n\
         Bob Jones,devnull@localhost,\n",
    )
    .expect("write");
    let out = dir.path().join("out.csv");
    let run = devid_match(&["--authors", input.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let mut reader = csv::Reader::from_path(&out).expect("output");
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        ["raw_name", "raw_email", "cluster_id", "tier"]
    );
    let rows: Vec<Vec<String>> =
        reader.records().map(|r| r.expect("row").iter().map(str::to_string).collect()).collect();
    assert_eq!(rows.len(), 5, "one line per distinct pair: {rows:?}");
    assert_eq!(rows[1][0], "Doe, Jane", "names as read");
    assert_eq!(rows[0][2], rows[1][2], "one address, one person");
    assert_eq!(rows[0][3], "auto");
    assert_ne!(rows[3][2], rows[4][2], "a shared placeholder joins nobody");
    assert_eq!(rows[3][3], "single");
}

#[test]
fn a_malformed_file_is_an_error_naming_its_line() {
    let dir = tempfile::tempdir().expect("dir");
    let input = dir.path().join("bad.csv");
    std::fs::write(&input, "author_name,author_email\nJane,jane@x.com\n\"Bob,bob@x.com\n").expect("write");
    let run = devid_match(&["--authors", input.to_str().expect("utf-8")]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    let missing = dir.path().join("nope.csv");
    let run = devid_match(&["--authors", missing.to_str().expect("utf-8")]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("nope.csv"));
    std::fs::write(&input, "name,email\nJane,jane@x.com\n").expect("write");
    let run = devid_match(&["--authors", input.to_str().expect("utf-8")]);
    assert!(String::from_utf8_lossy(&run.stderr).contains("author_name and author_email"));
}
