/* table.c -- the kernel table of one SIMD level; compiled once per level, like the family files. */
#include "common.h"

#define FL_STR2(x) #x
#define FL_STR(x) FL_STR2(x)

#define FL_DECLARE_IMPL(name, args) int FL_IMPL(name)(args *a);
FL_KERNEL_LIST(FL_DECLARE_IMPL)

#define FL_TABLE_ENTRY(name, args) .name = FL_IMPL(name),
const fl_kernel_table FL_CAT(fl_table, FL_LEVEL) = {
    .level = FL_STR(FL_LEVEL),
    FL_KERNEL_LIST(FL_TABLE_ENTRY)
};
