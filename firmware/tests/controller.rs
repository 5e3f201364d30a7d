//! Controller bring-up against scripted UART, reset-pin and delay transactions.

mod support;

use dwell_node::controller::{self, Controller, Error, Incoming, NoResetPin};
use embedded_hal_mock::eh1::delay::{CheckedDelay, NoopDelay, Transaction as DelayTx};
use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinTx};
use support::*;

#[test]
fn bring_up_pulses_reset_and_sends_the_exact_commands() {
    let uart = ScriptedUart::new(bring_up());
    let pin = PinMock::new(&[PinTx::set(State::Low), PinTx::set(State::High)]);
    let delay = CheckedDelay::new(&[DelayTx::delay_ms(10), DelayTx::delay_ms(100)]);
    let mut c = Controller::new(uart, Some(pin), delay, controller::Config::default());
    c.bring_up().unwrap();
    assert_eq!(c.stats().bring_ups, 1);
    let (uart, pin, mut delay) = c.release();
    uart.done();
    pin.unwrap().done();
    delay.done();
}

#[test]
fn bring_up_without_a_reset_line_starts_with_hci_reset() {
    let mut steps = vec![Step::Read(vec![0xff, 0x00])]; // line noise before anything
    steps.extend(bring_up());
    let mut c = Controller::new(
        ScriptedUart::new(steps),
        None::<NoResetPin>,
        NoopDelay::new(),
        controller::Config::default(),
    );
    // The noise is readable before the first write: the node sees it as garbage, not as an answer.
    assert!(c.poll_event().unwrap().is_none());
    assert_eq!(c.reader().stats().garbage_bytes, 2);
    c.bring_up().unwrap();
    c.release().0.done();
}

#[test]
fn a_refused_command_is_a_typed_error() {
    let uart = ScriptedUart::new([
        Step::Write(RESET.to_vec()),
        Step::Read(cc(0x0c03)),
        Step::Write(SET_EVENT_MASK.to_vec()),
        Step::Read(cc(0x0c01)),
        Step::Write(SCAN_PARAMS.to_vec()),
        // 0x12: Invalid HCI Command Parameters
        Step::Read(cc_status(0x200b, 0x12)),
    ]);
    let mut c = Controller::new(
        uart,
        None::<NoResetPin>,
        NoopDelay::new(),
        Default::default(),
    );
    assert_eq!(
        c.bring_up(),
        Err(Error::CommandFailed {
            opcode: 0x200b,
            status: 0x12
        })
    );
    c.release().0.done();
}

#[test]
fn a_failing_command_status_ends_the_wait() {
    let uart = ScriptedUart::new([
        Step::Write(RESET.to_vec()),
        // Command Status: status 0x01 (unknown command), 1 packet, opcode 0x0c03
        Step::Read(vec![0x04, 0x0f, 0x04, 0x01, 0x01, 0x03, 0x0c]),
    ]);
    let mut c = Controller::new(
        uart,
        None::<NoResetPin>,
        NoopDelay::new(),
        Default::default(),
    );
    assert_eq!(
        c.bring_up(),
        Err(Error::CommandFailed {
            opcode: 0x0c03,
            status: 0x01
        })
    );
}

#[test]
fn a_silent_controller_times_out_after_the_configured_wait() {
    let uart = ScriptedUart::new([Step::Write(RESET.to_vec())]);
    let cfg = controller::Config {
        command_timeout_ms: 5,
        ..Default::default()
    };
    let delay = CheckedDelay::new(&vec![DelayTx::delay_ms(1); 5]);
    let mut c = Controller::new(uart, None::<NoResetPin>, delay, cfg);
    assert_eq!(c.bring_up(), Err(Error::Timeout { opcode: 0x0c03 }));
    let (uart, _, mut delay) = c.release();
    uart.done();
    delay.done();
}

#[test]
fn events_while_waiting_are_skipped_and_stale_answers_ignored() {
    let mut steps = vec![
        Step::Write(RESET.to_vec()),
        // An advertisement and a Command Complete for another opcode arrive first.
        Step::Read(adv_event([1, 2, 3, 4, 5, 6], 0, &[0x02, 0x01, 0x06], -50)),
        Step::Read(cc(0x200c)),
        Step::Read(cc(0x0c03)),
    ];
    steps.extend(bring_up().into_iter().skip(2));
    let mut c = Controller::new(
        ScriptedUart::new(steps),
        None::<NoResetPin>,
        NoopDelay::new(),
        Default::default(),
    );
    c.bring_up().unwrap();
    assert_eq!(c.stats().events_dropped_waiting, 2);
    c.release().0.done();
}

#[test]
fn hardware_error_during_a_command_and_between_events() {
    let uart = ScriptedUart::new([
        Step::Write(RESET.to_vec()),
        Step::Read(vec![0x04, 0x10, 0x01, 0x42]),
    ]);
    let mut c = Controller::new(
        uart,
        None::<NoResetPin>,
        NoopDelay::new(),
        Default::default(),
    );
    assert_eq!(c.bring_up(), Err(Error::HardwareError(0x42)));

    let uart = ScriptedUart::new([Step::Read(vec![0x04, 0x10, 0x01, 0x07])]);
    let mut c = Controller::new(
        uart,
        None::<NoResetPin>,
        NoopDelay::new(),
        Default::default(),
    );
    assert!(matches!(
        c.poll_event().unwrap(),
        Some(Incoming::HardwareError(0x07))
    ));
    assert_eq!(c.stats().hardware_errors, 1);
}

#[test]
fn advertising_reports_come_out_parsed_by_the_shared_code() {
    let events = capture_adv_events(3);
    assert_eq!(events.len(), 3, "the capture has LE advertising reports");
    let uart = ScriptedUart::new(events.iter().cloned().map(Step::Read));
    let mut c = Controller::new(
        uart,
        None::<NoResetPin>,
        NoopDelay::new(),
        Default::default(),
    );
    for raw in &events {
        let expect = dwell_shared::hci::parse_h4(raw)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        match c.poll_event().unwrap() {
            Some(Incoming::Advertising(mut reports)) => {
                assert_eq!(reports.next().unwrap().unwrap(), expect);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(c.poll_event().unwrap().is_none());
}
