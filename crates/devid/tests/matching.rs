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

#[test]
fn commits_give_zones_and_committers_and_links_write_the_evidence() {
    let dir = tempfile::tempdir().expect("dir");
    let input = dir.path().join("commits.csv");
    std::fs::write(
        &input,
        "sha,author_name,author_email,authored_at,committer_name,committer_email\n\
         1,Erik M. Bray,embray@stsci.edu,2015-10-08T10:00:00-04:00,Erik M. Bray,erik.bray@lri.fr\n\
         2,Erik M. Bray,erik.bray@lri.fr,2016-05-06T10:00:00+02:00,Erik M. Bray,erik.bray@lri.fr\n\
         3,Ann Lee,ann@a.com,2020-01-01T10:00:00+01:00,GitHub,noreply@github.com\n\
         4,Ann Lee,lee@b.org,2021-01-01T10:00:00+02:00,Ann Lee,lee@b.org\n\
         5,Bo Chen,bo@c.com,2021-01-01T10:00:00+08:00,Maintainer,m@c.com\n\
         6,Bo Chen,chen@d.org,2021-01-01T10:00:00-05:00,Bo Chen,chen@d.org\n",
    )
    .expect("write");
    let (out, links) = (dir.path().join("out.csv"), dir.path().join("links.csv"));
    let run = devid_match(&[
        "--commits",
        input.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--links",
        links.to_str().expect("utf-8"),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let rows: Vec<Vec<String>> = csv::Reader::from_path(&out)
        .expect("output")
        .records()
        .map(|r| r.expect("row").iter().map(str::to_string).collect())
        .collect();
    assert_eq!(rows[0][2], rows[1][2], "committed under the same name from the other address");
    assert_eq!(rows[2][2], rows[3][2], "one full name from one zone");
    assert_ne!(rows[4][2], rows[5][2], "one full name from two zones, nothing else: review only");
    let mut reader = csv::Reader::from_path(&links).expect("links");
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        ["name_a", "email_a", "name_b", "email_b", "rule", "tier", "value"]
    );
    let evidence: Vec<Vec<String>> =
        reader.records().map(|r| r.expect("row").iter().map(str::to_string).collect()).collect();
    assert_eq!(
        evidence,
        vec![
            vec!["Ann Lee", "ann@a.com", "Ann Lee", "lee@b.org", "same-name-same-timezone", "auto", "ann lee"],
            vec![
                "Erik M. Bray",
                "embray@stsci.edu",
                "Erik M. Bray",
                "erik.bray@lri.fr",
                "committed-by-same-name",
                "auto",
                "erik.bray@lri.fr"
            ],
        ]
    );
}
