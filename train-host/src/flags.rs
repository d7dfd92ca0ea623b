//! The values a set of flags takes when none is given. The `#[arg]` attributes are the one
//! definition of every default; code that needs the defaults as values asks clap for them
//! here rather than writing them a second time.

use clap::{Args, Command, FromArgMatches};

/// `A` as an empty command line parses it. Panics if a flag of `A` is required: only types
/// whose every flag has a default may ask (a programming error, found by any test that runs it).
pub fn defaults<A: Args + FromArgMatches>() -> A {
    let command = A::augment_args(Command::new("defaults"));
    let matches = command
        .try_get_matches_from(["defaults"])
        .expect("every flag has a default");
    A::from_arg_matches(&matches).expect("the defaults parse")
}
