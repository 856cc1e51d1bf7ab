// SPDX-License-Identifier: GPL-2.0
/*
 * One-line wrappers for static inline and macro kernel APIs (see helpers.h).
 */
#include <xen/xen.h>

#include "helpers.h"

bool ebb_helper_xen_domain(void)
{
	return xen_domain();
}

bool ebb_helper_xen_pv_domain(void)
{
	return xen_pv_domain();
}

bool ebb_helper_xen_pvh_domain(void)
{
	return xen_pvh_domain();
}
