/* annpack — the public C API (umbrella header). */
#ifndef ANNPACK_H
#define ANNPACK_H

#include "bits.h"
#include "build.h"
#include "caps.h"
#include "cpu.h"
#include "csv.h"
#include "embed.h"
#include "format.h"
#include "log.h"
#include "meta.h"
#include "mount.h"
#include "pack.h"
#include "packset.h"
#include "query.h"
#include "search.h"
#include "sign.h"
#include "sq8.h"
#include "status.h"
#include "trust.h"
#include "vecs.h"

#endif
