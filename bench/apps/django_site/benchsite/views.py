from django.shortcuts import render

ITEMS = [{'name': 'item %d' % i, 'price': i * 1.25} for i in range(10)]


def index(request):
    return render(request, 'index.html', {'title': 'Benchmark', 'items': ITEMS})
