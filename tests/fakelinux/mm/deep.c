int deep_level(void);

int deep_level(void)
{
	return 2;
}
