#include <linux/quux.h>

int deep_level(void);

int deep_level(void)
{
	return quux_level() * 2;
}
