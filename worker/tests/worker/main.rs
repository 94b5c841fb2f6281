//! Worker integration tests against real MariaDB and RabbitMQ. Each test
//! has its own database and its own queues.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod alternates;
mod helpers;
mod incidents;
mod plan;
mod process;
mod properties;
mod recovery;
mod rules;
mod security;
mod swap;
mod timeouts;
mod waitlist;
mod waitlist_use;
