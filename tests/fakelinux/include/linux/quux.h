#ifndef _LINUX_QUUX_H
#define _LINUX_QUUX_H

#ifdef CONFIG_QUUX
int quux_level(void);
#else
static inline int quux_level(void)
{
	return 0;
}
#endif

#endif /* _LINUX_QUUX_H */
