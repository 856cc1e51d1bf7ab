// SPDX-License-Identifier: GPL-2.0

//! The device's files and the status line, from the one table that declares them.

use crate::balloon::files::Dir;
use crate::balloon::files::File;
use crate::balloon::files::Setting;
use crate::balloon::files::Show;
use crate::balloon::files::Status;
use crate::balloon::files::StatusLine;
use crate::balloon::files::Value;
use crate::balloon::files::FILES;
use crate::balloon::target::Invalid;

fn file(name: &str) -> &'static File {
    FILES
        .iter()
        .find(|file| file.name.to_str() == Ok(name))
        .unwrap_or_else(|| panic!("no file {name}"))
}

fn show(name: &str, status: &Status) -> Value {
    match file(name).show {
        Show::Value(value) => value(status),
        Show::BlockList => panic!("{name} is the block list"),
    }
}

fn store(name: &str, input: &[u8]) -> Result<Setting, Invalid> {
    let parse = file(name)
        .store
        .unwrap_or_else(|| panic!("{name} is read-only"));
    parse(input)
}

fn sample() -> Status {
    Status {
        state: "stalled",
        reason: "enomem_hypervisor",
        current_pages: 262138,
        target_pages: 300000,
        requested_pages: 310000,
        ballooned_pages: 1024,
        floor_pages: 43394,
        max_pages: 393216,
        schedule_delay_s: 4,
        max_schedule_delay_s: 32,
        retry_count: 2,
        max_retry_count: 0,
        scrub_pages: true,
        hypercalls: 7,
        pages_out: 2048,
        pages_in: 1024,
        failures: 2,
        oom_deflated_pages: 512,
        rejected_targets: 1,
        lost_pages: 0,
        hotplug_blocks: 2,
        hotplug_onlined: 1,
        hotplug_unremovable: 1,
        hotplug_backed_pages: 49152,
        hotplug_ballooned_pages: 16384,
        remove_timeout_ms: 30000,
    }
}

#[test]
fn the_status_line_is_the_one_the_host_reads() {
    assert_eq!(
        StatusLine(&sample()).to_string(),
        "state=stalled reason=enomem_hypervisor current_kb=1048552 target_kb=1200000 \
         requested_kb=1240000 ballooned_pages=1024 hypercalls=7 pages_out=2048 pages_in=1024 \
         failures=2 oom_deflated_pages=512 rejected_targets=1 hotplug_blocks=2 \
         hotplug_onlined=1 hotplug_unremovable=1 hotplug_backed_pages=49152 \
         hotplug_ballooned_pages=16384"
    );
}

#[test]
fn the_c_drivers_files_keep_their_directories_and_modes() {
    for (name, dir, writable) in [
        ("target_kb", Dir::Device, true),
        ("target", Dir::Device, true),
        ("schedule_delay", Dir::Device, false),
        ("max_schedule_delay", Dir::Device, true),
        ("retry_count", Dir::Device, false),
        ("max_retry_count", Dir::Device, true),
        ("scrub_pages", Dir::Device, true),
        ("current_kb", Dir::Info, false),
        ("low_kb", Dir::Info, false),
        ("high_kb", Dir::Info, false),
    ] {
        assert_eq!(file(name).dir, dir, "{name}");
        assert_eq!(file(name).store.is_some(), writable, "{name}");
    }
    assert_eq!(Dir::Device.name(), None);
    assert_eq!(Dir::Info.name(), Some(c"info"));
    assert_eq!(Dir::Ebb.name(), Some(c"ebb"));
}

#[test]
fn ebbs_own_files_are_under_ebb_and_read_only_but_the_removal_timeout() {
    let own: Vec<&File> = FILES.iter().filter(|file| file.dir == Dir::Ebb).collect();
    assert_eq!(own.len(), 20);
    let writable: Vec<&str> = own
        .iter()
        .filter(|file| file.store.is_some())
        .map(|file| file.name.to_str().unwrap())
        .collect();
    assert_eq!(writable, ["remove_timeout_ms"]);
    assert!(!file("remove_timeout_ms").status_line);
    assert!(matches!(file("hotplug_block_list").show, Show::BlockList));
    assert!(!file("hotplug_block_list").status_line);
}

#[test]
fn every_file_has_a_name_of_its_own() {
    let mut names: Vec<&str> = FILES
        .iter()
        .map(|file| file.name.to_str().unwrap())
        .collect();
    assert!(names
        .iter()
        .all(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), FILES.len());
}

#[test]
fn files_show_their_values_in_their_units() {
    let status = sample();
    assert_eq!(show("target_kb", &status), Value::Number(1200000));
    assert_eq!(show("target", &status), Value::Number(300000 * 4096));
    assert_eq!(show("current_kb", &status), Value::Number(1048552));
    assert_eq!(show("low_kb", &status), Value::Number(4096));
    assert_eq!(show("high_kb", &status), Value::Number(0));
    assert_eq!(show("floor_kb", &status), Value::Number(173576));
    assert_eq!(show("max_kb", &status), Value::Number(1572864));
    assert_eq!(show("schedule_delay", &status), Value::Number(4));
    assert_eq!(show("retry_count", &status), Value::Number(2));
    assert_eq!(show("scrub_pages", &status), Value::Number(1));
    assert_eq!(show("state", &status), Value::Name("stalled"));
    assert_eq!(show("state", &status).to_string(), "stalled");
    let huge = Status {
        target_pages: usize::MAX,
        ..status
    };
    assert_eq!(show("target", &huge), Value::Number(u64::MAX));
}

#[test]
fn writes_are_parsed_per_file() {
    assert_eq!(
        store("target_kb", b"1048576\n"),
        Ok(Setting::Target(262144))
    );
    assert_eq!(store("target_kb", b"0x400"), Ok(Setting::Target(256)));
    assert_eq!(store("target_kb", b"4095"), Ok(Setting::Target(1023)));
    assert_eq!(store("target", b"512M\n"), Ok(Setting::Target(131072)));
    assert_eq!(store("target", b"4097"), Ok(Setting::Target(1)));
    assert_eq!(store("target", b"1e"), Ok(Setting::Target(1 << 48)));
    assert_eq!(
        store("max_schedule_delay", b"4\n"),
        Ok(Setting::MaxScheduleDelay(4))
    );
    assert_eq!(
        store("max_retry_count", b"0"),
        Ok(Setting::MaxRetryCount(0))
    );
    assert_eq!(
        store("max_retry_count", b"3"),
        Ok(Setting::MaxRetryCount(3))
    );
    assert_eq!(store("scrub_pages", b"0\n"), Ok(Setting::ScrubPages(false)));
    assert_eq!(store("scrub_pages", b"on"), Ok(Setting::ScrubPages(true)));
    assert_eq!(
        store("remove_timeout_ms", b"1\n"),
        Ok(Setting::RemoveTimeout(1))
    );
    assert_eq!(
        store("remove_timeout_ms", b"30000"),
        Ok(Setting::RemoveTimeout(30000))
    );
}

#[test]
fn bad_writes_are_refused() {
    for (name, junk) in [
        ("target_kb", &b"-1"[..]),
        ("target_kb", b"512M"),
        ("target_kb", b"12abc"),
        ("target", b"512MB"),
        ("target", b""),
        ("max_schedule_delay", b"0"),
        ("max_schedule_delay", b"4294967296"),
        ("max_retry_count", b"-1"),
        ("scrub_pages", b"2"),
        ("remove_timeout_ms", b"0"),
        ("remove_timeout_ms", b"-5"),
        ("remove_timeout_ms", b"1s"),
    ] {
        assert_eq!(store(name, junk), Err(Invalid), "{name} {junk:?}");
    }
}

#[test]
fn lost_pages_counts_the_pages_lost_to_broken_frames_outside_the_status_line() {
    let lost = file("lost_pages");
    let Show::Value(value) = lost.show else {
        panic!("lost_pages is not a value");
    };
    let status = Status {
        lost_pages: 3,
        ..Status::default()
    };
    assert_eq!(value(&status), Value::Number(3));
    assert_eq!(lost.dir, Dir::Ebb);
    assert!(!lost.status_line);
    assert!(!StatusLine(&status).to_string().contains("lost_pages"));
}
