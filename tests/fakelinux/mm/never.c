int never_called(void);

int never_called(void)
{
	return 1;
}
