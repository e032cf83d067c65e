#pragma once
// CS_HD marks math written once and compiled for both backends: plain inline functions on the
// host, __host__ __device__ under nvcc.
#ifdef __CUDACC__
#define CS_HD __host__ __device__
#else
#define CS_HD
#endif
