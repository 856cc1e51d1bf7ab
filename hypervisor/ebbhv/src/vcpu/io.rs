//! The guest's port I/O exits. The guest owns no device: every port is
//! intercepted. Reads float high (Linux then finds no PIC, PIT or RTC), except PIT
//! channel 2's counter; writes go to whoever listens (the 0xE9 early console, the
//! ACPI power registers), which the exit dispatcher decides.

use ebbhv_x86::vmcb::IoExit;

use super::Cpu;

/// PIT channel 2's counter port.
const PIT_CHANNEL2: u16 = 0x42;

/// What a port I/O exit asks of the rest of the machine.
pub enum PortAccess {
    /// Nothing more (a read, completed here).
    Done,
    /// A string instruction, which ebbhv skips.
    String(u16),
    /// A byte written to a port.
    Write(u16, u8),
}

impl Cpu {
    /// The port I/O exit: completes a read, reports a write, and moves RIP on.
    /// Returns the port and what the rest of the machine must do.
    pub fn io_exit(&mut self) -> (u16, PortAccess) {
        let io = IoExit::decode(self.vcpu.control().exit_info1);
        let next = self.vcpu.control().exit_info2;
        let access = if io.string {
            PortAccess::String(io.port)
        } else if io.input {
            // No device: the bus floats high. A 32-bit IN zero-extends into RAX; 8
            // and 16-bit ones keep the upper bits. The exception is PIT channel 2's
            // counter, which reads 0: Linux's quick PIT calibration of the CPU clock
            // polls it until its top byte leaves 0xFF, 100 000 exits (about a second
            // under TCG) that a 0 cuts to one.
            let all_ones = if io.port == PIT_CHANNEL2 { 0 } else { u64::MAX };
            let rax = &mut self.vcpu.save_mut().rax;
            *rax = match io.size {
                1 => (*rax & !0xff) | (all_ones & 0xff),
                2 => (*rax & !0xffff) | (all_ones & 0xffff),
                _ => all_ones & 0xffff_ffff,
            };
            PortAccess::Done
        } else {
            PortAccess::Write(io.port, self.vcpu.save().rax as u8)
        };
        self.vcpu.save_mut().rip = next;
        (io.port, access)
    }
}
