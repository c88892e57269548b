/* sign: placeholder, implemented in its own change. */
#include "annpack/sign.h"
