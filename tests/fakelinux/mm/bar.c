#include <linux/foo.h>

int bar_sum(void);

int bar_sum(void)
{
	int sum = 0;
	int i;

	for (i = 0; i < foo_count(); i++)
		sum += foo_get(i);
	return sum;
}
