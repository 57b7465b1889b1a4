/* tenant.c: filled in by the issue-8 work in progress. */
#include "gb_scale.h"
