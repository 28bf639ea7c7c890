import asyncio

from signals.service import main

asyncio.run(main())
