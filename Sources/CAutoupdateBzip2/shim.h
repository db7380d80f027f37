// libbz2 for Swift. Its API has no macros or variadics; the shim only gives the module a header.
#ifndef CAUTOUPDATE_BZIP2_SHIM_H
#define CAUTOUPDATE_BZIP2_SHIM_H

#include <bzlib.h>

#endif
