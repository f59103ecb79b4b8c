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
