//! The event decoder, and the engine behind it: any bytes either decode
//! into an event or are refused with a reason; a decoded event is applied
//! to an engine, which may refuse it but must not panic.
#![no_main]

use std::sync::OnceLock;

use callwatch::config::Config;
use callwatch::engine::{settings::Settings, Engine};
use libfuzzer_sys::fuzz_target;

static SETTINGS: OnceLock<Option<Settings>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let settings = SETTINGS.get_or_init(|| Config::embedded().ok().map(|c| Settings::from_config(&c)));
    let Some(settings) = settings else { return };
    let mut engine = Engine::new(settings.clone());
    // Several lines share one engine, so sequences are explored too.
    for line in data.split(|b| *b == b'\n') {
        match callwatch::event::decode(line) {
            Ok(ev) => {
                let now = ev.ts_ms();
                let _ = engine.apply(&ev, now);
                // Encoding a decoded event must decode to the same event.
                let again = callwatch::event::decode(callwatch::event::encode(&ev).as_bytes());
                assert_eq!(again.as_ref().ok(), Some(&ev));
                let _ = callwatch::snapshot::build(&engine, now);
                engine.tick(now);
            }
            Err(r) => assert!(!r.message.is_empty()),
        }
    }
});
