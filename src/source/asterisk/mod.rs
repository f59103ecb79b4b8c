//! Asterisk sources: `queue_log` files and the Manager Interface (AMI).
//!
//! Both speak app_queue's vocabulary and map it through the shared call
//! tracker (`source::pbx`). The mapping table, with the fields that
//! differ between Asterisk versions, is in docs/sources/asterisk.md.

pub mod ami;
pub mod queue_log;
