//! Integration tests: one binary (saves link time), one module per area.
//! Each test starts the real server on loopback and a real upstream DNS
//! server on loopback, and talks to it with a real DNS client.

mod forwarding;
mod harness;
mod hostile;
mod upstream;

mod admin;
mod bursts;
mod bypass;
mod central;
mod cli;
mod corpus;
mod dashboard;
mod defaults;
mod encrypted;
mod encrypted_upstream;
mod fast;
mod filtering;
mod formats;
mod health;
mod heartbeat;
mod ingest;
mod lossy;
mod protocol;
mod reload;
mod spoofing;
mod stats;
mod subscriptions;
mod takedown;
mod warning;
