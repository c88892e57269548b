/* csv: placeholder, implemented in its own change. */
#include "annpack/csv.h"
