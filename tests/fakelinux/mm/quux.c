#include <linux/quux.h>

int quux_level(void)
{
	return 1;
}
