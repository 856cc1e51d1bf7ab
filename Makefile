# SPDX-License-Identifier: GPL-2.0
#
# ebb's top-level targets. The two that a fresh machine needs:
#   make run    set up, build what is missing, boot the test guest under ebbhv with a shell
#   make test   set up, build what is missing, run every host test and guest kselftest
# The others are the steps they are made of. Kernel-module builds invoke this
# directory's Kbuild through `make -C $(KDIR) M=$(CURDIR)`.

ifneq ($(KERNELRELEASE),)
include $(src)/Kbuild
else

EBB_CACHE ?= $(HOME)/.cache/ebb
KDIR ?= $(CURDIR)/build/guest/kbuild
MODULE_OUT = $(CURDIR)/build/guest/module
KMAKE_FLAGS = RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
	BINDGEN=$(EBB_CACHE)/tools/bin/bindgen LIBCLANG_PATH=/usr/lib/llvm-19/lib \
	CLIPPY_DRIVER=/usr/bin/clippy-driver

.PHONY: all setup kernel module initramfs hv ebbctl hv-run bench run test clean help

all: initramfs

help:
	@sed -n 's/^#   make \(.*\)/  make \1/p' Makefile

setup:
	@scripts/setup-deps.sh

kernel: setup
	@scripts/build-kernel.sh guest

# CLIPPY=1: the module is always linted as it is built (clippy-driver also compiles).
# `make module KDIR=/path/to/linux/build` builds ebb.ko against that kernel instead,
# with the Rust toolchain its build used, after checking its configuration
# (scripts/check-kdir.sh); the project's own kernel is not built then.
ifeq ($(origin KDIR),command line)
module:
	@scripts/check-kdir.sh $(KDIR)
	@$(MAKE) -s -C $(KDIR) M=$(CURDIR)
else
# The objects go to build/guest/module (MO=), so the source tree stays clean and
# ebb.ko builds for other kernel flavours beside it.
module: kernel
	@mkdir -p $(MODULE_OUT)
	@$(MAKE) -s -C $(KDIR) M=$(CURDIR) MO=$(MODULE_OUT) $(KMAKE_FLAGS) CLIPPY=1
endif

initramfs: module
	@scripts/build-initramfs.sh guest

# QEMU → ebbhv → the guest; EBB_PLATFORM=qemu boots the guest on plain QEMU instead.
run: initramfs hv ebbctl
	@scripts/run-guest.sh shell

hv: setup
	@scripts/build-hv.sh

ebbctl: setup
	@cargo build --release --quiet --manifest-path hypervisor/Cargo.toml -p ebbctl

# The guest under ebbhv with ebbhv's defaults and full guest logging, for debugging
# ebbhv (see scripts/run-hv.sh --help).
hv-run: hv initramfs
	@scripts/run-hv.sh --timeout 3600

# The hypervisor core's microbenchmarks, page offline under ebbhv
# (scripts/bench-offline.sh), then ebb.ko against the C balloon driver under ebbhv
# (scripts/bench-balloon.sh; builds the c-balloon guest kernel once).
bench: initramfs hv ebbctl
	@scripts/bench-core.sh
	@scripts/bench-offline.sh
	@scripts/bench-balloon.sh

test: setup
	@scripts/test-all.sh

clean:
	rm -rf build/*/module build/*/initramfs*

endif
