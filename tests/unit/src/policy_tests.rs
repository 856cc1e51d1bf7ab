// SPDX-License-Identifier: GPL-2.0

//! The backoff between attempts without progress, against the tunables.

use crate::balloon::policy::Backoff;
use crate::balloon::policy::Retry;
use crate::balloon::policy::Tunables;

fn delays(backoff: &mut Backoff, tunables: &Tunables, attempts: usize) -> Vec<Retry> {
    (0..attempts).map(|_| backoff.failed(tunables)).collect()
}

#[test]
fn defaults_are_the_c_drivers() {
    assert_eq!(
        Tunables::DEFAULT,
        Tunables {
            scrub_pages: true,
            max_schedule_delay_s: 32,
            max_retry_count: 0,
        }
    );
    let backoff = Backoff::new();
    assert_eq!(backoff.schedule_delay_s(), 1);
    assert_eq!(backoff.retry_count(), 0);
}

#[test]
fn the_delay_doubles_up_to_the_maximum_and_never_gives_up_by_default() {
    let mut backoff = Backoff::new();
    let seen = delays(&mut backoff, &Tunables::DEFAULT, 8);
    let expected: Vec<Retry> = [1, 2, 4, 8, 16, 32, 32, 32]
        .into_iter()
        .map(Retry::After)
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(backoff.retry_count(), 8);
    assert_eq!(backoff.schedule_delay_s(), 32);
}

#[test]
fn a_maximum_of_4_gives_1_2_4_4() {
    let tunables = Tunables {
        max_schedule_delay_s: 4,
        ..Tunables::DEFAULT
    };
    let mut backoff = Backoff::new();
    let seen = delays(&mut backoff, &tunables, 5);
    let expected: Vec<Retry> = [1, 2, 4, 4, 4].into_iter().map(Retry::After).collect();
    assert_eq!(seen, expected);
}

#[test]
fn max_retry_count_gives_up_on_that_attempt() {
    let tunables = Tunables {
        max_retry_count: 3,
        ..Tunables::DEFAULT
    };
    let mut backoff = Backoff::new();
    let seen = delays(&mut backoff, &tunables, 3);
    assert_eq!(seen, [Retry::After(1), Retry::After(2), Retry::GiveUp]);
    assert_eq!(backoff.retry_count(), 3);
    // Further attempts (a kick without a new target) give up at once.
    assert_eq!(backoff.failed(&tunables), Retry::GiveUp);
}

#[test]
fn a_lowered_maximum_applies_to_the_next_delay() {
    let mut backoff = Backoff::new();
    delays(&mut backoff, &Tunables::DEFAULT, 5);
    assert_eq!(backoff.schedule_delay_s(), 32);
    let lowered = Tunables {
        max_schedule_delay_s: 2,
        ..Tunables::DEFAULT
    };
    assert_eq!(backoff.failed(&lowered), Retry::After(2));
    assert_eq!(backoff.schedule_delay_s(), 2);
}

#[test]
fn a_zero_maximum_counts_as_one_second() {
    let tunables = Tunables {
        max_schedule_delay_s: 0,
        ..Tunables::DEFAULT
    };
    let mut backoff = Backoff::new();
    let seen = delays(&mut backoff, &tunables, 3);
    assert_eq!(seen, [Retry::After(1); 3]);
}

#[test]
fn progress_starts_over() {
    let mut backoff = Backoff::new();
    delays(&mut backoff, &Tunables::DEFAULT, 4);
    backoff.reset();
    assert_eq!(backoff, Backoff::new());
    assert_eq!(backoff.failed(&Tunables::DEFAULT), Retry::After(1));
}
