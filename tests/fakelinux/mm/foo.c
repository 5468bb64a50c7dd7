#include <linux/foo.h>

static int foo_items[4];

int foo_get(int id)
{
	return foo_items[id & 3];
}

int foo_count(void)
{
	return 4;
}
