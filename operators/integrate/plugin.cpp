// loom-integrate: combining and reshaping tables (join, union, select, rename, derive).
#include "integrate.hpp"

LOOM_PLUGIN_OPERATORS("loom-integrate", "0.1.0", loom::ops::integrate::join_registration,
                      loom::ops::integrate::union_registration, loom::ops::integrate::select_registration,
                      loom::ops::integrate::rename_registration, loom::ops::integrate::derive_registration)
