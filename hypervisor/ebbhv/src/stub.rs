//! The built-in smoke-test guest, run when QEMU hands ebbhv no payload bundle: a
//! few bytes of 32-bit code that make one hypercall, halt once and then touch
//! unmapped guest memory. It shows that SVM, nested paging and the exit paths work
//! before any Linux is involved (`scripts/run-hv.sh --selftest`).

/// The guest code, loaded at guest-physical 0 and entered there:
/// `mov eax, 0x1234; vmmcall; hlt; mov dword [0x40000000], 0x55; jmp $`.
pub const CODE: &[u8] = &[
    0xb8, 0x34, 0x12, 0x00, 0x00, // mov eax, 0x1234
    0x0f, 0x01, 0xd9, // vmmcall
    0xf4, // hlt
    0xc7, 0x05, 0x00, 0x00, 0x00, 0x40, 0x55, 0x00, 0x00, 0x00, // mov [0x40000000], 0x55
    0xeb, 0xfe, // jmp $
];

/// The guest-physical address the last instruction touches; the NPF there ends
/// the self-test.
pub const UNMAPPED_GPA: u64 = 0x4000_0000;

use ebbhv_core::addr::GuestPhys;
use ebbhv_core::addr::{DomId, Gfn, GfnRange};
use ebbhv_core::domain::DomainConfig;
use ebbhv_core::hv::Hypervisor;
use ebbhv_hal::log;
use ebbhv_hal::npt::Npt;
use ebbhv_hal::qemu_exit::{exit_qemu, ExitCode as RunExit};
use ebbhv_hal::svm::Vcpu;
use ebbhv_x86::npt_mirror::NptMirror;
use ebbhv_x86::vmcb::ExitCode;

use crate::guest_memory::{write_guest_phys, HostFrames, Translate};

/// Runs the smoke test to its end (ends the QEMU run). The stub's one page of RAM
/// comes from the core like any guest's, and its NPT is the mirror of its p2m.
#[expect(
    clippy::expect_used,
    reason = "boot self-test: the stub is ebbhv's own code, a failure to set it up ends the test"
)]
pub fn run(mut hv: Hypervisor, domid: DomId) -> ! {
    let config = DomainConfig {
        id: domid,
        max_pages: 1,
        memory_map: alloc::vec::Vec::new(),
    };
    hv.create_domain(config, &mut HostFrames)
        .expect("the core creates the stub's domain");
    hv.populate_boot_memory(domid, GfnRange::new(Gfn(0), Gfn(1)), &mut HostFrames)
        .expect("the core has a frame for the stub");
    let dom = hv.domain(domid).expect("just created");
    write_guest_phys(&Translate::P2m(dom), GuestPhys(0), CODE).expect("gfn 0 is mapped");
    log!(
        "self-test: stub guest at gpa 0 ({:?})",
        dom.p2m().entry(Gfn(0)).map(|e| e.mfn)
    );
    let mut npt = Npt::new().expect("hypervisor memory for the NPT root");
    hv.sync_p2m(domid, &mut NptMirror::new(&mut npt))
        .expect("the domain exists");
    let mut vcpu = Vcpu::new_pvh(npt, 0, 0, crate::vcpu::msr::PASS_THROUGH);
    loop {
        vcpu.run();
        let c = vcpu.control();
        let (code, info1, info2, rip) = (c.exit_code, c.exit_info1, c.exit_info2, vcpu.save().rip);
        match ExitCode::decode(code) {
            Ok(ExitCode::Vmmcall) => {
                log!(
                    "self-test: VMMCALL rax={:#x} at rip {rip:#x}",
                    vcpu.save().rax
                );
                vcpu.skip(3);
            }
            Ok(ExitCode::Hlt) => {
                log!("self-test: HLT at rip {rip:#x}");
                vcpu.skip(1);
            }
            Ok(ExitCode::Npf) if info2 == UNMAPPED_GPA => {
                log!("self-test: NPF at gpa {info2:#x} (error {info1:#x}) rip {rip:#x}: passed");
                exit_qemu(RunExit::Success);
            }
            other => {
                log!("self-test: unexpected exit {other:?} code {code:#x} info1 {info1:#x} info2 {info2:#x} rip {rip:#x}");
                exit_qemu(RunExit::GuestFatal);
            }
        }
    }
}
