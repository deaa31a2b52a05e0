"""Demo content for ``make run`` (the ``seed_demo`` command): above the apps, since it drives catalog,
certification and generators the way a provider would. ``products`` makes the certified dataset products;
``marketplace.generators.demo`` the generator product; ``exchange.orders.demo`` the sales."""
