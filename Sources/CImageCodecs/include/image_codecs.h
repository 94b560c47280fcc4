#ifndef VARAUDIT_IMAGE_CODECS_H
#define VARAUDIT_IMAGE_CODECS_H
#include <stddef.h>
#include <stdint.h>
#endif
