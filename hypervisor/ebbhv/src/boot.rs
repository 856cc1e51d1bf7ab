//! Entry from QEMU's PVH loader into 64-bit Rust.
//!
//! QEMU reads `XEN_ELFNOTE_PHYS32_ENTRY` from the note below and jumps to
//! `_start32` in 32-bit protected mode with paging off and EBX = the physical
//! address of its `hvm_start_info`. The code clears `.bss`, identity-maps the low
//! 4 GiB with 2 MiB pages, enters long mode with a three-entry boot GDT and calls
//! [`crate::ebbhv_main`] with the start-info address. Machine memory above 4 GiB is
//! not mapped (the run script gives QEMU at most 2 GiB below the PCI hole).

core::arch::global_asm!(
    r#"
    .section .note.ebbhv, "a", @note
    .balign 4
    .long 4                 /* namesz: "Xen\0" */
    .long 8                 /* descsz */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad _start32
    .balign 4

    .section .text.boot, "ax"
    .code32
    .global _start32
_start32:
    cli
    cld
    mov %ebx, %esi

    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    /* 2048 PD entries: P | RW | PS, 2 MiB each, identity over 4 GiB */
    mov $boot_pd, %edi
    mov $0x83, %eax
    xor %ecx, %ecx
1:  mov %eax, (%edi,%ecx,8)
    movl $0, 4(%edi,%ecx,8)
    add $0x200000, %eax
    inc %ecx
    cmp $2048, %ecx
    jne 1b

    mov $boot_pdpt, %edi
    mov $boot_pd + 3, %eax
    xor %ecx, %ecx
2:  mov %eax, (%edi,%ecx,8)
    add $0x1000, %eax
    inc %ecx
    cmp $4, %ecx
    jne 2b

    mov $boot_pml4, %edi
    movl $boot_pdpt + 3, (%edi)

    mov %cr4, %eax
    or $0x20, %eax          /* CR4.PAE */
    mov %eax, %cr4
    mov %edi, %cr3
    mov $0xc0000080, %ecx   /* EFER */
    rdmsr
    or $0x100, %eax         /* LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax    /* PG | PE */
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $3f

    .code64
3:  mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    mov $boot_stack_top, %rsp
    mov %esi, %edi
    call ebbhv_main
4:  hlt
    jmp 4b

    .section .rodata
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .bss
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
boot_stack:
    .skip 64 * 1024
boot_stack_top:
    .code64
"#,
    options(att_syntax)
);
