//! `nsgf ot ...`: optimal-transport tools.

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum OtCommand {}

pub fn run(cmd: OtCommand) -> Result<()> {
    match cmd {}
}
