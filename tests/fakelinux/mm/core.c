#include <linux/foo.h>
#include <linux/quux.h>

int core_setup(void);
int core_total(void);

int core_setup(void)
{
	return foo_count();
}

int core_total(void)
{
	int spare;	/* an old -Wall warning (unused variable): part of the base */

	return foo_count() + quux_level();
}
