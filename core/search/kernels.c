/* Choosing a kernel version by name or by CPU: see kernels.h. */
#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "annpack/cpu.h"
#include "kernels.h"

static int runs(const ap_kernel_info *k)
{
    for (size_t i = 0; i < sizeof k->needs / sizeof k->needs[0]; i++)
        if (k->needs[i] && !ap_cpu_has(k->needs[i])) return 0;
    return 1;
}

int ap_kernel_find(const ap_kernel_info *kinfo, int n, const char *isa)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(kinfo[i].name, isa)) return runs(&kinfo[i]) ? i : -1;
    return -1;
}

int ap_kernel_best(const ap_kernel_info *kinfo, int n)
{
    assert(n > 0 && !kinfo[n - 1].needs[0]); /* the table ends with the portable version */
    int i = 0;
    while (i < n - 1 && !runs(&kinfo[i]))
        i++;
    return i;
}
