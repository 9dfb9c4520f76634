#include <seccomp.h>
#include <linux/seccomp.h>
#include <linux/filter.h>
