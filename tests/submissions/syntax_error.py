"""Does not parse."""


def softmax(x, dim=-1)
    return x
