//! Shell completions and the man page, generated from the clap definitions so they
//! always match `--help`.

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

pub fn completions(args: CompletionsArgs) -> Result<()> {
    let mut command = super::Cli::command();
    clap_complete::generate(args.shell, &mut command, "devid", &mut std::io::stdout());
    Ok(())
}

pub fn man() -> Result<()> {
    let page = clap_mangen::Man::new(super::Cli::command());
    page.render(&mut std::io::stdout()).context("cannot write the man page")
}
