//! Upgrades lose nothing: every build starts on the data directory of
//! each released version (a committed fixture per release) with the
//! state that version had, and goes on writing in its own formats.

mod common;

use std::path::Path;

use common::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("ls").flatten() {
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

#[tokio::test]
async fn the_0_1_0_data_directory_starts_with_the_same_state() {
    let fixture = Path::new(FIXTURES).join("data-0.1.0");
    let cfg = std::fs::read_to_string(fixture.join("callwatch.toml")).expect("config");
    let want = std::fs::read_to_string(fixture.join("digest")).expect("digest");
    let work = tempfile::tempdir().expect("tmp");
    let data = work.path().join("data");
    copy_dir(&fixture.join("data"), &data);
    let dir = data.to_str().expect("utf-8").to_string();
    let d = Daemon::start_args(&cfg, &["--data-dir", &dir]);
    let snap = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(
        snap["digest"].as_str(),
        Some(want.trim()),
        "the state 0.1.0 had"
    );
    // The same as this build makes of the same events.
    let events = fixture.join("events.ndjson");
    let offline = replay_offline(&d.dir.path().join("callwatch.toml"), &events);
    assert_eq!(offline["digest"], snap["digest"]);
    let ready = readyz(&d).await;
    assert_eq!(ready["recovery"]["status"], "clean", "{ready}");
    assert_eq!(ready["recovery"]["snapshot"], 1800);
    assert_eq!(ready["recovery"]["replayed"], 600);
    // Everything it had acknowledged is known: resent, all duplicates.
    let lines: Vec<String> = std::fs::read_to_string(&events)
        .expect("events")
        .lines()
        .map(str::to_string)
        .collect();
    let (status, r) = post(&d, lines.join("\n")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["duplicates"].as_u64(), Some(lines.len() as u64), "{r}");
    // New events go on in the new format, after the old segments.
    let more: Vec<String> = (0..50)
        .map(|i| {
            ev(
                &format!("up{i}"),
                "18:00:00",
                "task_created",
                &format!(r#""task":"up{i}","kind":"callback","queue":"orders""#),
            )
        })
        .collect();
    let (status, r) = post(&d, more.join("\n")).await;
    assert_eq!((status, r["accepted"].as_u64()), (200, Some(50)), "{r}");
    let after = get_json(&d, "/api/v1/snapshot").await["digest"].clone();
    d.kill9();
    let formats: Vec<u32> = callwatch::journal::segments(&data.join("journal"))
        .expect("ls")
        .iter()
        .map(|(_, p)| callwatch::journal::format_of(&std::fs::read(p).expect("read")))
        .collect();
    assert_eq!(formats.first(), Some(&1), "old segments stay as they were");
    assert_eq!(formats.last(), Some(&2), "{formats:?}");
    let d = Daemon::start_args(&cfg, &["--data-dir", &dir]);
    assert_eq!(get_json(&d, "/api/v1/snapshot").await["digest"], after);
}

fn check_data(cfg: &Path, data: &Path) -> (bool, String) {
    let out = std::process::Command::new(BIN)
        .args(["check-data", "--config"])
        .arg(cfg)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("check-data");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Every file under `dir`, with its contents.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("ls").flatten() {
        if e.path().is_dir() {
            out.extend(files(&e.path()));
        } else {
            out.push((e.path(), std::fs::read(e.path()).expect("read")));
        }
    }
    out.sort();
    out
}

#[test]
fn check_data_reports_formats_ranges_and_damage_and_changes_nothing() {
    let fixture = Path::new(FIXTURES).join("data-0.1.0");
    let work = tempfile::tempdir().expect("tmp");
    let data = work.path().join("data");
    copy_dir(&fixture.join("data"), &data);
    let cfg = fixture.join("callwatch.toml");
    let (ok, said) = check_data(&cfg, &data);
    assert!(ok, "{said}");
    for needle in [
        "snapshot         1800  state format 7: a start migrates it to 8",
        "segment           900  format 1  records 900..=1199",
        "a start would load the snapshot at 1800 and replay 600 record(s); the next record is 2400; status clean",
        "upgrade: the format-1 segments are read as they are",
    ] {
        assert!(said.contains(needle), "{needle:?} missing:\n{said}");
    }
    // A flipped byte after the snapshot: damage, exit 1, nothing touched.
    let seg = data.join("journal/00000000000000002100.log");
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[4000] ^= 0x40;
    std::fs::write(&seg, bytes).expect("write");
    let before = files(&data);
    let (ok, said) = check_data(&cfg, &data);
    assert!(!ok, "{said}");
    assert!(said.contains("status damaged"), "{said}");
    assert!(said.contains("finding: "), "{said}");
    assert_eq!(files(&data), before, "check-data changes nothing");
    // A segment gone before the snapshot: a fall-back would miss it.
    std::fs::remove_file(data.join("journal/00000000000000001200.log")).expect("rm");
    let (ok, said) = check_data(&cfg, &data);
    assert!(!ok);
    assert!(
        said.contains("gap: records 1200..=1499 are missing"),
        "{said}"
    );
    // All snapshots gone: a start would stop.
    for s in callwatch::store::snapshot_files(&data).expect("ls") {
        std::fs::remove_file(s).expect("rm");
    }
    let (ok, said) = check_data(&cfg, &data);
    assert!(!ok);
    assert!(said.contains("a start would stop"), "{said}");
}
