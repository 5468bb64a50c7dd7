#ifndef _LINUX_FOO_H
#define _LINUX_FOO_H

#ifdef CONFIG_FOO
int foo_get(int id);
int foo_count(void);
#else
static inline int foo_count(void)
{
	return 0;
}
#endif

#endif /* _LINUX_FOO_H */
