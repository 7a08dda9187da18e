//! Black-box tests of the `switchboard` binary: everything through HTTP and the CLI.

mod bench;
mod calls;
mod console;
mod contract;
mod delivery;
mod dialects;
mod fidelity;
mod flows;
mod hardening;
mod ingest;
mod management;
mod nodes;
mod ops;
#[path = "../../../store/tests/support/pg.rs"]
mod pg;
mod postgres;
mod records;
mod reference_api;
mod support;
mod trust;
mod waiting;
