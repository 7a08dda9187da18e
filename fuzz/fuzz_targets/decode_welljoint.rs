//! No input may panic or hang the welljoint decoder: every byte string is either events or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_dialects::{decode, encode, parse_body, DecodeContext, Recipient};
use switchboard_model::Dialect;

fuzz_target!(|data: &[u8]| {
    let ctx = DecodeContext::at(jiff::Timestamp::from_second(1_700_000_000).unwrap());
    let Ok(items) = parse_body(Dialect::Welljoint, data) else { return };
    for item in &items {
        if let Ok(facts) = decode(Dialect::Welljoint, item, &ctx) {
            // Whatever decodes must also encode, in every dialect, without panicking.
            for fact in facts {
                let event = switchboard_model::Event {
                    id: Default::default(),
                    account: Default::default(),
                    source: switchboard_model::Source { dialect: Dialect::Welljoint, name: None },
                    received_at: ctx.received_at,
                    tags: switchboard_model::tags::derive(&fact),
                    silent: false,
                    fact,
                };
                for to in Dialect::ALL {
                    let _ = encode(to, &event, &Recipient::default());
                }
            }
        }
    }
});
