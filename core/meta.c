/* meta: placeholder, implemented in its own change. */
#include "annpack/meta.h"
