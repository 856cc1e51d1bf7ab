/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for kernel APIs that are static inline functions or macros, which Rust
 * cannot call directly. Each is a one-line wrapper; the Rust side lives in rust/.
 */
#ifndef EBB_HELPERS_H
#define EBB_HELPERS_H

#include <linux/types.h>

bool ebb_helper_xen_domain(void);
bool ebb_helper_xen_pv_domain(void);
bool ebb_helper_xen_pvh_domain(void);

#endif
