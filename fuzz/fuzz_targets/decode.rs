//! The event decoder, and the engine behind it: any bytes either decode
//! into an event or are refused with a reason; a decoded event is applied
//! to an engine through the live apply path, which may refuse it but must
//! not panic, and a refusal must leave the state exactly as it was.
//! Strict decoding (`ingest.strict`) takes a subset of the same events.
#![no_main]

use std::sync::OnceLock;

use callwatch::clock::EventClock;
use callwatch::config::{ClockMode, Config};
use callwatch::engine::{settings::Settings, Engine};
use libfuzzer_sys::fuzz_target;

static SETTINGS: OnceLock<Option<Settings>> = OnceLock::new();

fn settings() -> Option<Settings> {
    let mut c = Config::embedded().ok()?;
    c.clock.mode = ClockMode::Event;
    // Small bounds, so the limit paths are explored too.
    c.limits.max_queues = 8;
    c.limits.max_agents = 8;
    c.limits.max_teams = 4;
    c.limits.max_sites = 3;
    c.limits.max_task_kinds = 6;
    c.limits.max_open_tasks = 8;
    c.limits.max_live_calls = 8;
    Some(Settings::from_config(&c))
}

fuzz_target!(|data: &[u8]| {
    let Some(settings) = SETTINGS.get_or_init(settings) else {
        return;
    };
    let mut engine = Engine::new(settings.clone());
    let clock = EventClock::default();
    // Several lines share one engine, so sequences are explored too.
    for line in data.split(|b| *b == b'\n') {
        // Strict decoding only refuses more: what it takes, the lenient
        // decoder takes as the same event.
        if let Ok(strict) = callwatch::event::decode_strict(line) {
            assert_eq!(callwatch::event::decode(line).ok(), Some(strict));
        }
        match callwatch::event::decode(line) {
            Ok(ev) => {
                let before = engine.digest();
                let (now, result) = engine.apply_at(&ev, &clock);
                if let Err(r) = &result {
                    assert!(!r.message.is_empty());
                    assert_eq!(engine.digest(), before, "refused {r} changed the state");
                }
                // Encoding a decoded event must decode to the same event.
                let again = callwatch::event::decode(callwatch::event::encode(&ev).as_bytes());
                assert_eq!(again.as_ref().ok(), Some(&ev));
                let _ = callwatch::snapshot::build(&engine, now);
                engine.tick();
            }
            Err(r) => assert!(!r.message.is_empty()),
        }
    }
});
